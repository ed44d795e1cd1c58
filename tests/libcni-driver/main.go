// libcni-driver runs a conflist through libcni, the library containerd and CRI-O use, so the
// tests exercise the plugin exactly as those runtimes call it: prevResult chaining, the result
// cache, reverse-order DEL and CHECK with the cached result, and (libcni 1.2 and later, CNI
// 1.1) GC with the runtime's valid attachments and STATUS of the whole list.
//
// Usage (CNI_PATH names the plugin directories, like cnitool):
//
//	libcni-driver ADD|CHECK|DEL|CACHED CONFLIST CONTAINERID NETNS IFNAME CACHEDIR
//	libcni-driver GC CONFLIST CACHEDIR [CONTAINERID/IFNAME ...]
//	libcni-driver STATUS CONFLIST CACHEDIR
//
// ADD prints the result, CACHED prints libcni's cached result ("null" when there is none).
// GC's arguments after CACHEDIR are the attachments the runtime still has. A failure is
// printed on stderr and exits with status 1.
//
// Built offline against Debian's golang-github-appc-cni-dev (bookworm's libcni 1.1.2 has no
// GC and no STATUS; sid's 1.3 has them and is built with -tags cni11, see cni11.go):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build [-tags cni11] -o libcni-driver .
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

const usage = `usage: libcni-driver ADD|CHECK|DEL|CACHED CONFLIST CONTAINERID NETNS IFNAME CACHEDIR
       libcni-driver GC CONFLIST CACHEDIR [CONTAINERID/IFNAME ...]
       libcni-driver STATUS CONFLIST CACHEDIR`

func main() {
	if len(os.Args) < 4 {
		fail(errors.New(usage))
	}
	verb, conflist := os.Args[1], os.Args[2]
	list, err := libcni.ConfListFromFile(conflist)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	newCNI := func(cacheDir string) *libcni.CNIConfig {
		return libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cacheDir, nil)
	}

	switch verb {
	case "GC":
		err = gc(ctx, newCNI(os.Args[3]), list, os.Args[4:])
	case "STATUS":
		err = status(ctx, newCNI(os.Args[3]), list)
	default:
		err = perAttachment(ctx, verb, list, newCNI)
	}
	if err != nil {
		fail(err)
	}
}

// perAttachment runs the verbs that act on one attachment.
func perAttachment(ctx context.Context, verb string, list *libcni.NetworkConfigList, newCNI func(string) *libcni.CNIConfig) error {
	if len(os.Args) != 7 {
		return errors.New(usage)
	}
	containerID, netns, ifname, cacheDir := os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	cni := newCNI(cacheDir)
	rt := &libcni.RuntimeConf{ContainerID: containerID, NetNS: netns, IfName: ifname}

	switch verb {
	case "ADD":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		printResult(result)
	case "CHECK":
		return cni.CheckNetworkList(ctx, list, rt)
	case "DEL":
		return cni.DelNetworkList(ctx, list, rt)
	case "CACHED":
		result, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil {
			return err
		}
		printResult(result)
	default:
		return fmt.Errorf("unknown verb %q", verb)
	}
	return nil
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
