// A pool-based client through rolling restarts: Go's database/sql with go-sql-driver/mysql
// (Debian's), which reconnects by itself (a pooled connection found closed is replaced and
// the statement retried on a new one). Workers run short read/write transactions for the
// given time and print, as JSON, what committed (every committed insert's key) and every
// error by kind. Run by the fault suite (tests/faults/restart.rs) with GO111MODULE=off.
package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

type report struct {
	Committed [][2]int       `json:"committed"`
	Errors    map[string]int `json:"errors"`
	Reads     int            `json:"reads"`
}

func main() {
	dsn, table := os.Args[1], os.Args[2]
	secs, _ := strconv.Atoi(os.Args[3])
	workers, _ := strconv.Atoi(os.Args[4])
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		panic(err)
	}
	db.SetMaxOpenConns(workers)
	db.SetMaxIdleConns(workers)
	var mu sync.Mutex
	rep := report{Errors: map[string]int{}}
	fail := func(what string, err error) {
		mu.Lock()
		msg := err.Error()
		if len(msg) > 70 {
			msg = msg[:70]
		}
		rep.Errors[what+": "+msg]++
		mu.Unlock()
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for seq := 1; time.Now().Before(deadline); seq++ {
				tx, err := db.Begin()
				if err != nil {
					fail("begin", err)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if _, err := tx.Exec(fmt.Sprintf("INSERT INTO %s (worker, seq) VALUES (?, ?)", table), w, seq); err != nil {
					fail("insert", err)
					tx.Rollback()
					continue
				}
				var n int
				if err := tx.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE worker = ?", table), w).Scan(&n); err != nil {
					fail("select", err)
					tx.Rollback()
					continue
				}
				if err := tx.Commit(); err != nil {
					fail("commit", err)
					continue
				}
				var one int
				if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
					fail("autocommit read", err)
				}
				mu.Lock()
				rep.Committed = append(rep.Committed, [2]int{w, seq})
				rep.Reads++
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(rep)
}
