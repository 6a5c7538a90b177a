"""Operations: queue health, the jobs screen, retries of failed jobs."""
