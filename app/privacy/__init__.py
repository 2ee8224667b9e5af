"""A person's own data over its life: the download of everything held about them, and the anonymisation of the
accounts left inactive."""
