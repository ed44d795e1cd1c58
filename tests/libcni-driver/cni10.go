//go:build !cni11

// libcni before 1.2 (Debian bookworm's 1.1.2) has neither GC nor STATUS.

package main

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/libcni"
)

func gc(context.Context, *libcni.CNIConfig, *libcni.NetworkConfigList, []string) error {
	return fmt.Errorf("this libcni has no GC: build with -tags cni11 against libcni 1.2 or later")
}

func status(context.Context, *libcni.CNIConfig, *libcni.NetworkConfigList) error {
	return fmt.Errorf("this libcni has no STATUS: build with -tags cni11 against libcni 1.2 or later")
}
