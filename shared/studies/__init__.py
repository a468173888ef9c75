"""Studies: their expansion into jobs, their store and dispatch, and their leaderboard."""
