"""DueCourse: a collections platform that proves every contact was lawful."""
