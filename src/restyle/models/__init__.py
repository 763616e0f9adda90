"""Networks used by the feed-forward engines (no training code here)."""
