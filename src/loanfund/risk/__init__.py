"""Risk analytics: the fund's stress test (a seeded Monte Carlo over the covered book) and the monthly
risk rating of each partner bank."""
