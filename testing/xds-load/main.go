// xds-load: the load generator of `make bench`'s xDS benchmark. It simulates
// thousands of proxies (Envoy sidecars and proxyless gRPC clients, over SotW and
// Delta ADS) against one xDS server, and answers the bench's questions about
// them. Commands come as JSON lines on stdin, answers go as JSON lines on stdout
// (unsolicited progress lines carry "event"):
//
//	{"cmd":"connect","address":"127.0.0.1:15010","proxies":[ProxyDesc...],"streamsPerConn":1}
//	{"cmd":"wait-synced","timeoutMs":600000}       every proxy ACKed every type and name
//	{"cmd":"watch","kind":"endpoints","name":"outbound|80||h","addresses":["10.244.0.5",...]}
//	{"cmd":"watch","kind":"route","host":"h"}       armed now, before the change is made
//	{"cmd":"await","since":1.7e12,"timeoutMs":30000} when the watch's last proxy ACKed
//	{"cmd":"stats"}
//	{"cmd":"close"}
//
// It decodes only what a proxy must read to follow its subscriptions, so that on
// a small machine the server, not the load generator, gets the CPU.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unique"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type load struct {
	proxies      []*proxy
	conns        []*grpc.ClientConn
	cancel       context.CancelFunc
	started      time.Time
	bytes        atomic.Int64
	responses    atomic.Int64
	synced       atomic.Int64
	streamErrors atomic.Int64
	lastError    atomic.Value
	watch        atomic.Pointer[watch]
	routes       routeStore
	addrMu       sync.RWMutex
	addrDigests  map[uint64]uint64
}

type command struct {
	Cmd            string      `json:"cmd"`
	Address        string      `json:"address"`
	Proxies        []ProxyDesc `json:"proxies"`
	StreamsPerConn int         `json:"streamsPerConn"`
	TimeoutMs      int64       `json:"timeoutMs"`
	Kind           string      `json:"kind"`
	Name           string      `json:"name"`
	Addresses      []string    `json:"addresses"`
	Host           string      `json:"host"`
	Since          float64     `json:"since"`
	Index          int         `json:"index"`
}

var outMu sync.Mutex

func say(v map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	b, _ := json.Marshal(v)
	_, _ = os.Stdout.Write(append(b, '\n'))
}

// addressDigest is a CLA's endpoint set digest, parsed once per distinct CLA
// content: thousands of proxies receive the same bytes.
func (l *load) addressDigest(cla []byte) uint64 {
	h := maphash.Bytes(seed, cla)
	l.addrMu.RLock()
	d, ok := l.addrDigests[h]
	l.addrMu.RUnlock()
	if ok {
		return d
	}
	d = digestOfAddresses(endpointAddresses(cla))
	l.addrMu.Lock()
	if len(l.addrDigests) > 1_000_000 {
		l.addrDigests = map[uint64]uint64{}
	}
	l.addrDigests[h] = d
	l.addrMu.Unlock()
	return d
}

func (l *load) connect(c command) map[string]any {
	if l.cancel != nil {
		return map[string]any{"error": "already connected"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	perConn := max(c.StreamsPerConn, 1)
	l.started = time.Now()
	var conn *grpc.ClientConn
	for i, desc := range c.Proxies {
		p, err := newProxy(i, desc)
		if err != nil {
			return map[string]any{"error": fmt.Sprintf("proxy %s: %v", desc.ID, err)}
		}
		if i%perConn == 0 {
			// Envoy's own HTTP/2 windows are large; small windows would throttle big CDS pushes here, not in the server.
			conn, err = grpc.NewClient(c.Address,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithInitialWindowSize(16<<20), grpc.WithInitialConnWindowSize(16<<20))
			if err != nil {
				return map[string]any{"error": err.Error()}
			}
			l.conns = append(l.conns, conn)
		}
		l.proxies = append(l.proxies, p)
		go p.run(ctx, conn, l)
	}
	return map[string]any{"connected": len(l.proxies), "connections": len(l.conns)}
}

func (l *load) waitSynced(c command) map[string]any {
	deadline := time.Now().Add(time.Duration(c.TimeoutMs) * time.Millisecond)
	lastProgress := time.Now()
	for int(l.synced.Load()) < len(l.proxies) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if time.Since(lastProgress) >= 5*time.Second {
			lastProgress = time.Now()
			say(map[string]any{"event": "progress", "synced": l.synced.Load(), "of": len(l.proxies), "bytes": l.bytes.Load(), "seconds": math.Round(time.Since(l.started).Seconds())})
		}
	}
	var last int64
	var unsynced []string
	for _, p := range l.proxies {
		p.mu.Lock()
		if p.synced {
			last = max(last, p.syncedAt)
		} else if len(unsynced) < 3 {
			types := []string{}
			for t := range p.answered {
				types = append(types, t[strings.LastIndex(t, ".")+1:])
			}
			missingEds := len(p.edsNames) - countHeld(p.edsNames, p.eds)
			missingRds := len(p.rdsNames) - countHeld(p.rdsNames, p.rds)
			unsynced = append(unsynced, fmt.Sprintf("%s: answered %v, EDS %d/%d, RDS %d/%d", p.desc.ID, types, len(p.edsNames)-missingEds, len(p.edsNames), len(p.rdsNames)-missingRds, len(p.rdsNames)))
		}
		p.mu.Unlock()
	}
	synced := l.synced.Load()
	return map[string]any{
		"synced": synced, "of": len(l.proxies), "timedOut": int(synced) < len(l.proxies),
		"elapsedMs": float64(last-l.started.UnixMicro()) / 1000, "unsynced": unsynced,
	}
}

func countHeld(names map[name]struct{}, held map[name]resState) int {
	n := 0
	for k := range names {
		if _, ok := held[k]; ok {
			n++
		}
	}
	return n
}

func (l *load) arm(c command) map[string]any {
	w := &watch{kind: c.Kind, host: c.Host}
	switch c.Kind {
	case "endpoints":
		w.name = unique.Make(c.Name)
		w.expected = digestOfAddresses(c.Addresses)
	case "route":
	default:
		return map[string]any{"error": "watch kind must be endpoints or route"}
	}
	l.watch.Store(w)
	w.arm(l.proxies, l)
	return map[string]any{"armed": true, "subscribed": w.subscribed, "pending": w.pending()}
}

func (l *load) await(c command) map[string]any {
	w := l.watch.Load()
	if w == nil {
		return map[string]any{"error": "no watch armed"}
	}
	timedOut := false
	select {
	case <-w.done:
	case <-time.After(time.Duration(c.TimeoutMs) * time.Millisecond):
		timedOut = true
	}
	l.watch.Store(nil)
	elapsed := float64(w.lastAck.Load())/1000 - c.Since
	return map[string]any{"done": !timedOut, "timedOut": timedOut, "subscribed": w.subscribed, "pending": w.pending(), "elapsedMs": max(elapsed, 0)}
}

func (l *load) stats() map[string]any {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	cpu := float64(usage.Utime.Sec+usage.Stime.Sec) + float64(usage.Utime.Usec+usage.Stime.Usec)/1e6
	lastError, _ := l.lastError.Load().(string)
	return map[string]any{
		"bytes": l.bytes.Load(), "responses": l.responses.Load(), "synced": l.synced.Load(), "of": len(l.proxies),
		"streamErrors": l.streamErrors.Load(), "lastError": lastError, "cpuSeconds": cpu, "maxRssBytes": usage.Maxrss * 1024,
	}
}

// describe shows what one proxy holds (a few names of each type), to tell why a watch finds no subscriber.
func (l *load) describe(index int) map[string]any {
	if index < 0 || index >= len(l.proxies) {
		return map[string]any{"error": "no such proxy"}
	}
	p := l.proxies[index]
	p.mu.Lock()
	defer p.mu.Unlock()
	sample := func(names []string) []string { return names[:min(len(names), 5)] }
	clusters := make([]string, 0, len(p.clusterEds))
	for c, eds := range p.clusterEds {
		clusters = append(clusters, c.Value()+" eds="+eds.Value())
	}
	listeners := make([]string, 0, len(p.listenerRoutes))
	for n := range p.listenerRoutes {
		listeners = append(listeners, n)
	}
	slices.Sort(clusters)
	slices.Sort(listeners)
	return map[string]any{
		"id": p.desc.ID, "delta": p.desc.Delta, "clusters": len(clusters), "clusterSample": sample(clusters),
		"listeners": sample(listeners), "eds": len(p.edsNames), "edsSample": sample(handles(p.edsNames)),
		"rds": len(p.rdsNames), "rdsSample": sample(handles(p.rdsNames)),
	}
}

func main() {
	l := &load{routes: routeStore{bytes: map[uint64][]byte{}}, addrDigests: map[uint64]uint64{}}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			var c command
			if jsonErr := json.Unmarshal(line, &c); jsonErr != nil {
				say(map[string]any{"error": jsonErr.Error()})
				continue
			}
			switch c.Cmd {
			case "connect":
				say(l.connect(c))
			case "wait-synced":
				say(l.waitSynced(c))
			case "watch":
				say(l.arm(c))
			case "await":
				say(l.await(c))
			case "stats":
				say(l.stats())
			case "describe":
				say(l.describe(c.Index))
			case "close":
				l.shutdown()
				say(map[string]any{"closed": true})
				return
			default:
				say(map[string]any{"error": "unknown command " + c.Cmd})
			}
		}
		if err == io.EOF {
			// The bench went away: never outlive it.
			l.shutdown()
			return
		}
		if err != nil {
			l.shutdown()
			return
		}
	}
}

func (l *load) shutdown() {
	if l.cancel != nil {
		l.cancel()
	}
	for _, conn := range l.conns {
		_ = conn.Close()
	}
}
