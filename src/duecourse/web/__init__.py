"""The HTTP face of DueCourse (FastAPI): the public /verify page, the staff API, provider webhooks."""
