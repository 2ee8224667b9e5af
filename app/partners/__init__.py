"""Partner platforms exchanging missions in API Engagement's formats: keys, read and write APIs, feeds, tracking."""
