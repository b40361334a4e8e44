package cli

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/eval"
	"github.com/blockllm/blockllm-go/torch"
	"github.com/blockllm/blockllm-go/torch/dist"
)

// Parallel holds the data-parallel flags: --nproc-per-node (handled by Main's launcher
// before the flags are parsed; registered for -h) and --shard-state (ZeRO stage 1).
type Parallel struct {
	NProc      int
	ShardState bool
}

// Register defines the flags on fs.
func (p *Parallel) Register(fs *flag.FlagSet) {
	fs.IntVar(&p.NProc, "nproc-per-node", 1, "data-parallel workers to start on this machine (as torchrun --nproc-per-node; each\n"+
		"uses --device's CUDA device LOCAL_RANK, or a share of the CPU cores); under torchrun or Slurm, leave it out")
	fs.BoolVar(&p.ShardState, "shard-state", false, "data parallelism: keep each trainable tensor's Adam state on one rank only (ZeRO stage 1)")
}

// Job is the data-parallel side of a command: the process group (one rank without a
// launcher) and where this rank's notes go.
type Job struct {
	Group *dist.Group
}

// JoinJob joins the job torchrun's environment describes (the built-in launcher sets it;
// without it: one process, no sockets) and checks that every rank was started with the
// same settings, naming a rank that differs.
func JoinJob(settings map[string]string) (*Job, error) {
	g, err := dist.Init()
	if err != nil {
		return nil, err
	}
	if g.Size() > 1 {
		keys := make([]string, 0, len(settings))
		for k := range settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s ", k, strings.ReplaceAll(settings[k], " ", "_"))
		}
		if err := g.Agree("flags", strings.TrimSpace(b.String())); err != nil {
			g.Close()
			return nil, err
		}
	}
	return &Job{Group: g}, nil
}

// Rank and Size of the job.
func (j *Job) Rank() int { return j.Group.Rank() }

// Size is the number of ranks.
func (j *Job) Size() int { return j.Group.Size() }

// Main reports rank 0: the rank that prints, plots and writes checkpoints.
func (j *Job) Main() bool { return j.Group.IsMain() }

// Out is w on rank 0 and io.Discard elsewhere.
func (j *Job) Out(w io.Writer) io.Writer {
	if j.Main() {
		return w
	}
	return io.Discard
}

// Device is dev for this rank: a bare "cuda" becomes cuda:LOCAL_RANK under data
// parallelism.
func (j *Job) Device(dev torch.Device, flag string) torch.Device {
	if j.Size() > 1 && dev.IsCUDA() && flag == "cuda" {
		return torch.CUDA(j.Group.LocalRank())
	}
	return dev
}

// ReduceNLL sums a negative log-likelihood over the ranks (sharded evaluation).
func (j *Job) ReduceNLL(n eval.NLL) (eval.NLL, error) {
	if j.Size() == 1 {
		return n, nil
	}
	v, err := j.Group.AllReduceFloat64s([]float64{n.Sum, float64(n.Tokens)}, dist.Sum)
	if err != nil {
		return n, err
	}
	return eval.NLL{Sum: v[0], Tokens: int64(v[1])}, nil
}

// Shard returns this rank's items i ≡ rank (mod size) of n.
func (j *Job) Shard(n int) []int {
	var out []int
	for i := j.Rank(); i < n; i += j.Size() {
		out = append(out, i)
	}
	return out
}

// Close leaves the job.
func (j *Job) Close() error { return j.Group.Close() }

// All makes a decision collective: every rank returns an error when any rank's err is
// not nil (rank 0's message when it is rank 0's, else a note naming the failed ranks'
// count), so that ranks never diverge on whether to go on.
func (j *Job) All(err error) error {
	if j.Size() == 1 {
		return err
	}
	bad := 0.0
	if err != nil {
		bad = 1
	}
	v, cerr := j.Group.AllReduceFloat64s([]float64{bad}, dist.Sum)
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	if v[0] > 0 {
		return fmt.Errorf("stopped: %g other rank(s) failed (rank 0 prints why)", v[0])
	}
	return nil
}

// Sum sums v over the ranks (gathers predictions each rank put in its own entries).
func (j *Job) Sum(v []float64) ([]float64, error) { return j.Group.AllReduceFloat64s(v, dist.Sum) }
