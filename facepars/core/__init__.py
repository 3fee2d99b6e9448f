"""What every layer uses: files on disks and buckets, errors users act on, the
command-line convention, class tables, photos and masks on the host, progress lines,
pictures, and the Keras internals facepars relies on. Imports no other layer."""
