"""web/: the planner's and the admin's pages (browser/: the same pages in Chromium)."""
