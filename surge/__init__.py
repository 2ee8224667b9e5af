"""The crisis domain: emergency pages and bulk dispatch (issue 4). The sign-up surge path lives in app.volunteers."""
