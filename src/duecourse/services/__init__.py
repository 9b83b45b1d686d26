"""Use cases: import the book, run the daily cycle, show a loan, report. Services own transactions."""
