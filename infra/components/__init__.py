"""One ComponentResource per piece of the cluster: network, security groups, identity, GPU nodes and the
small service hosts. Each takes (name, args, opts), parents its resources to itself and registers its
outputs last."""
