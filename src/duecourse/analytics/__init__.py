"""Risk analytics over repayment history: roll rates now; scoring, allocation and simulation later."""
