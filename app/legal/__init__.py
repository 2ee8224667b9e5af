"""Legal pages (legal notice, accessibility statement, personal data, terms of use) as versioned texts, and the
version of the terms each person accepted."""
