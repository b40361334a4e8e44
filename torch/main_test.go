package torch_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/blockllm/blockllm-go/torch"
)

// testDevice is the device the tests run on: BLOCKLLM_DEVICE=cuda runs them on the GPU.
var testDevice = torch.CPU

func TestMain(m *testing.M) {
	dev, err := torch.DeviceFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDevice = dev
	torch.SetNumThreads(0)
	os.Exit(m.Run())
}
