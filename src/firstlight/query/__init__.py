"""What scientists ask of promoted releases: cone search now, TAP/ADQL later."""
