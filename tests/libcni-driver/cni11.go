//go:build cni11

// GC and STATUS of a whole list: libcni 1.2 and later (CNI 1.1).

package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// gc runs libcni's GC: a DEL for each attachment of the list in libcni's cache that is not
// valid, then (cniVersion 1.1.0 and later) GC of every plugin with the valid attachments.
func gc(ctx context.Context, cni *libcni.CNIConfig, list *libcni.NetworkConfigList, valid []string) error {
	args := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{}}
	for _, attachment := range valid {
		id, ifname, ok := strings.Cut(attachment, "/")
		if !ok {
			return fmt.Errorf("valid attachment %q: want CONTAINERID/IFNAME", attachment)
		}
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: id, IfName: ifname})
	}
	return cni.GCNetworkList(ctx, list, args)
}

// status runs STATUS of every plugin of the list (cniVersion 1.1.0 and later).
func status(ctx context.Context, cni *libcni.CNIConfig, list *libcni.NetworkConfigList) error {
	return cni.GetStatusNetworkList(ctx, list)
}
