package blockllm_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/torch"
)

// Pretrain a small Llama with BlockLLM on random tokens, checkpointing every 100 steps;
// Ctrl-C writes a checkpoint and returns, and running again resumes from it.
func Example() {
	cfg, _ := config.LlamaPreset("llama-20m")
	model, err := llama.New(cfg, llama.Options{Device: torch.CPU}, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer model.Close()
	opt, err := blockllm.NewBlockLLM(model, blockllm.BlockLLMConfig{Sparsity: blockllm.DefaultPretrainSparsity})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer opt.Close()
	data, _ := blockllm.NewRandomTokens(cfg.VocabSize, 8, 256, 1, torch.CPU)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	resume, _ := blockllm.LatestCheckpoint("runs/example")
	res, err := blockllm.Train(ctx, model, opt, data, blockllm.TrainConfig{
		Steps: 1000, LR: 1e-3, MaxGradNorm: 1,
		Schedule:      blockllm.Schedule{Kind: blockllm.Cosine, Warmup: 100, MinRatio: 0.1},
		CheckpointDir: "runs/example", CheckpointEvery: 100,
		SaveExtra: cfg.Save, // config.json next to the weights
		Observers: []blockllm.Observer{blockllm.ObserverFunc(func(e blockllm.Event) {
			if st, ok := e.(*blockllm.StepEvent); ok && st.Step%10 == 0 {
				fmt.Fprintf(os.Stderr, "step %d: loss %.4f\n", st.Step, st.Loss)
			}
		})},
	}, resume)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status, res.Step, res.Memory)
}

// The learning-rate factor of a cosine schedule with 10 warmup steps over 110 steps.
func ExampleSchedule() {
	s := blockllm.Schedule{Kind: blockllm.Cosine, Warmup: 10, MinRatio: 0.1}
	for _, step := range []int{0, 5, 10, 60, 110} {
		fmt.Printf("step %3d: %.3f\n", step, s.Factor(step, 110))
	}
	// Output:
	// step   0: 0.000
	// step   5: 0.500
	// step  10: 1.000
	// step  60: 0.550
	// step 110: 0.100
}
