"""The ministries' reply portal (`followup web`): see app.py."""
