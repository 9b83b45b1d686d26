"""The exact ledger: repayment schedules, the payment waterfall and delinquency as of any date."""
