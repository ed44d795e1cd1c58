//! The datapaths: the pod macvlan and the two ways the node reaches it (shim, veth).
