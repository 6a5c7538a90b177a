"""Staff sign-in: password + TOTP, recovery codes, sessions, sudo mode, permission guards."""
