// End-to-end tests arrive next.
