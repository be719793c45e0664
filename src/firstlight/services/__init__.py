"""The steps of a release as plain typed functions; flows/ and tasks/ arrange them."""
