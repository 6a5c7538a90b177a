"""The support console's customer page and global search: one place to answer a customer."""
