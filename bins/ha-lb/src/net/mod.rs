//! The Linux side of VRRP: raw sockets, virtual addresses over netlink, gratuitous ARP and
//! unsolicited neighbour advertisements, link state.
