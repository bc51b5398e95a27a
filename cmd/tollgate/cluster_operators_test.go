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
// same instant is created once; every other attempt is told it exists.
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
		s.Share(states.Create)
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
}
