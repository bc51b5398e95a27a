package main

import (
	"errors"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/internal/pgtest"
	"github.com/tollgate/tollgate/ledger/cluster"
	"github.com/tollgate/tollgate/proxy/access"
)

// TestOperatorsUniqueAcrossNodes: operators kept in PostgreSQL by several
// nodes (cluster mode): one operator ID created through many nodes at the
// same instant is created once, every other attempt told it exists; a
// change through a node with an older copy keeps the others' changes.
func TestOperatorsUniqueAcrossNodes(t *testing.T) {
	pg := pgtest.StartPrimary(t)
	var stores []*access.Store
	for range 4 {
		pool := connectPool(t, pg.DSN())
		if err := cluster.Migrate(t.Context(), pool); err != nil {
			t.Fatal(err)
		}
		states := cluster.NewStates(pool)
		s, err := access.Open(states.Load, states.Save)
		if err != nil {
			t.Fatal(err)
		}
		s.Share(states.Create, states.Change)
		stores = append(stores, s)
	}
	for round := range 5 {
		id := "olga-" + string(rune('a'+round))
		var mu sync.Mutex
		made, exists := 0, 0
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				_, err := stores[i%len(stores)].CreateOperator(access.Operator{ID: id, Email: "olga@platform.test", Role: access.RoleAdmin})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					made++
				case errors.Is(err, access.ErrExists):
					exists++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if made != 1 || exists != 15 {
			t.Fatalf("operator %s created %d times across the nodes (%d told it exists)", id, made, exists)
		}
	}

	// Node 0 disables an operator; node 1, not reloaded yet, changes its
	// role: the operator stays disabled.
	for _, s := range stores[:2] {
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	disabled, finance := true, access.RoleFinance
	if _, err := stores[0].UpdateOperator("olga-a", nil, &disabled); err != nil {
		t.Fatal(err)
	}
	if o, err := stores[1].UpdateOperator("olga-a", &finance, nil); err != nil || !o.Disabled {
		t.Fatalf("a role changed through a node with an older copy: %+v %v", o, err)
	}
	if err := stores[2].Reload(); err != nil {
		t.Fatal(err)
	}
	if o, _ := stores[2].Operator("olga-a"); !o.Disabled || o.Role != access.RoleFinance {
		t.Fatalf("stored: %+v, want disabled with role finance", o)
	}
}
