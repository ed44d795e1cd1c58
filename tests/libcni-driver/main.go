// libcni-driver runs a conflist through libcni, the library containerd and CRI-O use, so the
// tests exercise the plugin exactly as those runtimes call it: prevResult chaining, the result
// cache, reverse-order DEL and CHECK with the cached result.
//
// Usage (CNI_PATH names the plugin directories, like cnitool):
//
//	libcni-driver ADD|CHECK|DEL|CACHED CONFLIST CONTAINERID NETNS IFNAME CACHEDIR
//
// ADD prints the result, CACHED prints libcni's cached result ("null" when there is none).
// A failure is printed on stderr and exits with status 1.
//
// Built offline against Debian's golang-github-appc-cni-dev:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o libcni-driver main.go
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func main() {
	if len(os.Args) != 7 {
		fail(fmt.Errorf("usage: %s ADD|CHECK|DEL|CACHED CONFLIST CONTAINERID NETNS IFNAME CACHEDIR", os.Args[0]))
	}
	verb, conflist, containerID, netns, ifname, cacheDir := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]

	list, err := libcni.ConfListFromFile(conflist)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cacheDir, nil)
	rt := &libcni.RuntimeConf{ContainerID: containerID, NetNS: netns, IfName: ifname}
	ctx := context.Background()

	switch verb {
	case "ADD":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		printResult(result)
	case "CHECK":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "DEL":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "CACHED":
		result, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil {
			fail(err)
		}
		printResult(result)
	default:
		fail(fmt.Errorf("unknown verb %q", verb))
	}
}

// printResult prints a result as JSON, or "null" for none.
func printResult(result types.Result) {
	if result == nil {
		fmt.Println("null")
		return
	}
	out, err := json.Marshal(result)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
