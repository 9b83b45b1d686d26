"""Channel adapters: how a message leaves DueCourse (SMTP, an SMS gateway, an app-push webhook, letters)."""
