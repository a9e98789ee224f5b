"""Video data without downloads: a synthetic clip generator and DAVIS-style folders."""
