"""The example site's support chat: a page where visitors talk to the UniLink agents."""
