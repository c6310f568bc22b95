/* gate.h - a bounded number of threads computing at once, served in the
 * order they came (engine/README.md, "Compute slots").
 *
 * A slot freed while threads wait is handed to the first of them directly,
 * so a thread that arrives later can never take it first; a thread waits on
 * its own semaphore, so a release wakes exactly the one thread it serves. */
#ifndef ALLOT_GATE_H
#define ALLOT_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct gate_waiter;

struct gate {
    pthread_mutex_t mu;
    int slots; /* how many may compute at once */
    int free;  /* slots nobody holds (0 whenever a thread waits) */
    struct gate_waiter *head, *tail;
    _Atomic uint64_t entered, waited;
};

/* 0, or -1 when `slots` < 1 or the mutex cannot be made. */
int gate_init(struct gate *g, int slots);
void gate_destroy(struct gate *g);
/* Takes a slot, waiting in line for one; true when it had to wait. */
bool gate_enter(struct gate *g);
/* Gives the slot back: to the first waiting thread if there is one. */
void gate_leave(struct gate *g);
/* Entries and how many of them waited, since gate_init. */
void gate_counts(struct gate *g, uint64_t *entered, uint64_t *waited);

#endif
