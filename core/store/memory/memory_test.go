package memory_test

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Backend { return memory.New() })
}
