package dist

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Backend names, as torch.distributed spells them.
const (
	Gloo = "gloo" // CPU tensors (and CUDA tensors through host memory)
	NCCL = "nccl" // CUDA tensors; needs a shim built against a CUDA libtorch
)

// Defaults, as torch.distributed's: 30 minutes for a collective, 5 minutes (the
// TCPStore's default) to reach the store and for every rank to join.
const (
	DefaultTimeout     = 30 * time.Minute
	DefaultInitTimeout = 5 * time.Minute
)

// Environment variables of torchrun's contract (and of Slurm/Kubernetes launchers that
// mimic it), plus this package's own.
const (
	EnvRank             = "RANK"
	EnvWorldSize        = "WORLD_SIZE"
	EnvLocalRank        = "LOCAL_RANK"
	EnvLocalWorldSize   = "LOCAL_WORLD_SIZE"
	EnvMasterAddr       = "MASTER_ADDR"
	EnvMasterPort       = "MASTER_PORT"
	EnvUseAgentStore    = "TORCHELASTIC_USE_AGENT_STORE"
	EnvRestartCount     = "TORCHELASTIC_RESTART_COUNT"
	EnvGlooSocketIfname = "GLOO_SOCKET_IFNAME"
	// EnvTimeout overrides DefaultTimeout (a Go duration such as "90s" or "10m").
	EnvTimeout = "BLOCKLLM_DIST_TIMEOUT"
)

// Config says how to join a job. ConfigFromEnv fills it from torchrun's variables; tests
// and launchers may fill it directly.
type Config struct {
	Rank           int // this process's rank, 0..WorldSize-1
	WorldSize      int // number of processes (1: no store, no sockets)
	LocalRank      int // rank on this machine (the CUDA device of an NCCL group by default)
	LocalWorldSize int // processes on this machine

	// MasterAddr and MasterPort locate the TCPStore: rank 0 hosts it there, unless
	// UseAgentStore says the launcher does.
	MasterAddr string
	MasterPort int
	// UseAgentStore (TORCHELASTIC_USE_AGENT_STORE=True): the launcher hosts the store and
	// every rank, 0 included, connects as a client, under the key prefix
	// /worker/attempt_<RestartCount> as torch.distributed does.
	UseAgentStore bool
	RestartCount  int
	// StoreFile, when set, rendezvous through a c10d FileStore at this path (a shared
	// file system) instead of a TCPStore; MasterAddr and MasterPort are then unused.
	StoreFile string

	// Backend is Gloo (default) or NCCL; an NCCL group runs on cuda:LocalRank (with
	// CUDA_VISIBLE_DEVICES choosing the devices, as under torchrun).
	Backend string

	// SingleRankGroup builds the store and the process group even for one rank (to
	// exercise a backend, say NCCL on a machine with one GPU); without it world size 1
	// costs nothing.
	SingleRankGroup bool

	Timeout     time.Duration // default per collective (DefaultTimeout when 0)
	InitTimeout time.Duration // to reach the store and for all ranks to join (DefaultInitTimeout when 0)

	// GlooInterface (GLOO_SOCKET_IFNAME: interface names, comma-separated) or GlooHost (an
	// address of this machine) choose where Gloo listens. Neither: 127.0.0.1 when
	// MasterAddr is a loopback address, else this machine's address on the route to
	// MasterAddr.
	GlooInterface string
	GlooHost      string
}

// ConfigFromEnv reads torchrun's environment contract: RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE,
// TORCHELASTIC_RESTART_COUNT and GLOO_SOCKET_IFNAME (and BLOCKLLM_DIST_TIMEOUT). Without
// WORLD_SIZE, or with WORLD_SIZE=1, it returns a single-process config. LOCAL_RANK
// defaults to RANK modulo LOCAL_WORLD_SIZE (which defaults to WORLD_SIZE: one machine).
func ConfigFromEnv() (Config, error) {
	return configFrom(os.Getenv)
}

func configFrom(getenv func(string) string) (Config, error) {
	c := Config{WorldSize: 1, LocalWorldSize: 1}
	intVar := func(name string, dst *int, min int) error {
		v := strings.TrimSpace(getenv(name))
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("dist: %s=%q is not an integer", name, getenv(name))
		}
		if n < min {
			return fmt.Errorf("dist: %s=%d must be at least %d", name, n, min)
		}
		*dst = n
		return nil
	}
	if d := getenv(EnvTimeout); d != "" {
		t, err := time.ParseDuration(d)
		if err != nil || t <= 0 {
			return c, fmt.Errorf("dist: %s=%q is not a positive duration (e.g. 90s, 10m)", EnvTimeout, d)
		}
		c.Timeout = t
	}
	if getenv(EnvWorldSize) == "" {
		if r := getenv(EnvRank); r != "" && r != "0" {
			return c, fmt.Errorf("dist: %s=%s is set but %s is not", EnvRank, r, EnvWorldSize)
		}
		return c, nil
	}
	if err := intVar(EnvWorldSize, &c.WorldSize, 1); err != nil {
		return c, err
	}
	if getenv(EnvRank) == "" {
		if c.WorldSize > 1 {
			return c, fmt.Errorf("dist: %s=%d is set but %s is not", EnvWorldSize, c.WorldSize, EnvRank)
		}
	} else if err := intVar(EnvRank, &c.Rank, 0); err != nil {
		return c, err
	}
	if c.Rank >= c.WorldSize {
		return c, fmt.Errorf("dist: %s=%d is outside %s=%d (ranks are 0..%d)", EnvRank, c.Rank, EnvWorldSize, c.WorldSize, c.WorldSize-1)
	}
	c.LocalWorldSize = c.WorldSize
	if getenv(EnvLocalWorldSize) != "" {
		if err := intVar(EnvLocalWorldSize, &c.LocalWorldSize, 1); err != nil {
			return c, err
		}
	}
	c.LocalRank = c.Rank % c.LocalWorldSize
	if getenv(EnvLocalRank) != "" {
		if err := intVar(EnvLocalRank, &c.LocalRank, 0); err != nil {
			return c, err
		}
		if c.LocalRank >= c.LocalWorldSize {
			return c, fmt.Errorf("dist: %s=%d is outside %s=%d", EnvLocalRank, c.LocalRank, EnvLocalWorldSize, c.LocalWorldSize)
		}
	}
	c.GlooInterface = getenv(EnvGlooSocketIfname)
	// torch.distributed compares with str(True)
	c.UseAgentStore = getenv(EnvUseAgentStore) == "True"
	if c.UseAgentStore && getenv(EnvRestartCount) != "" {
		if err := intVar(EnvRestartCount, &c.RestartCount, 0); err != nil {
			return c, err
		}
	}
	if c.WorldSize == 1 {
		return c, nil // nothing to connect to (torchrun's agent store, if any, is not needed)
	}
	c.MasterAddr = getenv(EnvMasterAddr)
	if c.MasterAddr == "" {
		return c, fmt.Errorf("dist: %s is not set: with %s=%d every rank needs the address of the store (rank 0's machine, or the launcher's)",
			EnvMasterAddr, EnvWorldSize, c.WorldSize)
	}
	if getenv(EnvMasterPort) == "" {
		return c, fmt.Errorf("dist: %s is not set: with %s=%d every rank needs the store's port", EnvMasterPort, EnvWorldSize, c.WorldSize)
	}
	if err := intVar(EnvMasterPort, &c.MasterPort, 1); err != nil {
		return c, err
	}
	if c.MasterPort > 65535 {
		return c, fmt.Errorf("dist: %s=%d is not a TCP port (1..65535)", EnvMasterPort, c.MasterPort)
	}
	return c, nil
}

// withDefaults fills defaults and checks the config's own consistency (no network).
func (c Config) withDefaults() (Config, error) {
	if c.WorldSize == 0 {
		c.WorldSize = 1
	}
	if c.LocalWorldSize == 0 {
		c.LocalWorldSize = 1
	}
	if c.Backend == "" {
		c.Backend = Gloo
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	switch {
	case c.WorldSize < 1:
		return c, fmt.Errorf("dist: world size %d < 1", c.WorldSize)
	case c.Rank < 0 || c.Rank >= c.WorldSize:
		return c, fmt.Errorf("dist: rank %d is outside world size %d", c.Rank, c.WorldSize)
	case c.Backend != Gloo && c.Backend != NCCL:
		return c, fmt.Errorf("dist: unknown backend %q (want %q or %q)", c.Backend, Gloo, NCCL)
	}
	if c.WorldSize == 1 && !c.SingleRankGroup {
		return c, nil
	}
	if c.StoreFile == "" {
		if c.MasterPort < 1 || c.MasterPort > 65535 {
			return c, fmt.Errorf("dist: %s=%d is not a TCP port (1..65535)", EnvMasterPort, c.MasterPort)
		}
		if err := checkHostSyntax(c.MasterAddr); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkHostSyntax rejects what cannot be a host name or IP address (a URL, host:port,
// spaces) before anything is resolved or dialled.
func checkHostSyntax(a string) error {
	if a == "" {
		return fmt.Errorf("dist: %s is not set", EnvMasterAddr)
	}
	if net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")) != nil {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("dist: %s=%q is not a host name or IP address (%s)", EnvMasterAddr, a, why)
	}
	if strings.Contains(a, "://") {
		return bad("a URL; give the host only")
	}
	if strings.Contains(a, ":") {
		return bad("it has a colon: give the port in " + EnvMasterPort)
	}
	if len(a) > 253 {
		return bad("longer than 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(a, "."), ".") {
		if label == "" || len(label) > 63 {
			return bad("an empty or over-long label")
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return bad(fmt.Sprintf("character %q", r))
			}
		}
	}
	return nil
}

// resolve looks the master address up (an IP literal needs no lookup).
func resolve(a string, timeout time.Duration) ([]net.IP, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	if timeout > 30*time.Second {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dist: %s=%s does not resolve: %v", EnvMasterAddr, a, err)
	}
	ips := make([]net.IP, len(addrs))
	for i, x := range addrs {
		ips[i] = x.IP
	}
	return ips, nil
}

func allLoopback(ips []net.IP) bool {
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return len(ips) > 0
}

// isLocal reports whether one of ips is an address of this machine.
func isLocal(ips []net.IP) bool {
	if allLoopback(ips) {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: do not accuse
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			for _, ip := range ips {
				if n.IP.Equal(ip) {
					return true
				}
			}
		}
	}
	return false
}

// glooHost picks the address Gloo listens on: loopback for a loopback master, else the
// local address of the route to the master (a UDP "dial" sends nothing).
func glooHost(ips []net.IP, port int) string {
	if allLoopback(ips) {
		return ips[0].String()
	}
	for _, ip := range ips {
		conn, err := net.Dial("udp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			continue
		}
		local := conn.LocalAddr().(*net.UDPAddr).IP.String()
		conn.Close()
		return local
	}
	return "" // Gloo's default device: this machine's host name
}
