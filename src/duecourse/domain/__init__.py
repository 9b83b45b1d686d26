"""Pure domain types of DueCourse: money, the loan book, conventions and errors. No I/O here."""
