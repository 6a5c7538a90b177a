"""One queue for the requests staff make when their role may not act alone (refunds, credit
grants above the cap): an admin approves or declines each from the same screen."""
