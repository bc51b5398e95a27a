// Package testclock is the process's clock for what the passing of days
// drives (credit expiry, reminders, notifications): time.Now in every
// build but one made with the testclock build tag, where a file named by
// TOLLGATE_TEST_CLOCK moves it forward, so a process-level test can walk
// an account through weeks in seconds. No flag or setting of a production
// binary can move it.
package testclock
