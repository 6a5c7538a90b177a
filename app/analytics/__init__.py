"""Analytics: the admin dashboard (and, later, reports), always over production data unless asked."""
