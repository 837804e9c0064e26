"""Any image a person hands over, put in MNIST form (numpy; torch only where it resamples)."""
