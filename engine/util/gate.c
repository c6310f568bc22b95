/* gate.c - compute slots handed over in arrival order (gate.h). */
#include "gate.h"

#include <errno.h>
#include <semaphore.h>
#include <stddef.h>

/* On the waiting thread's stack while it waits. */
struct gate_waiter {
    sem_t ready; /* posted once the slot is this thread's */
    struct gate_waiter *next;
};

int
gate_init(struct gate *g, int slots)
{
    if (slots < 1 || pthread_mutex_init(&g->mu, NULL) != 0) {
        return -1;
    }
    g->slots = slots;
    g->free = slots;
    g->head = g->tail = NULL;
    atomic_init(&g->entered, 0);
    atomic_init(&g->waited, 0);
    return 0;
}

void
gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
}

bool
gate_enter(struct gate *g)
{
    atomic_fetch_add_explicit(&g->entered, 1, memory_order_relaxed);
    pthread_mutex_lock(&g->mu);
    if (g->free > 0) {
        g->free--;
        pthread_mutex_unlock(&g->mu);
        return false;
    }
    struct gate_waiter w = {.next = NULL};
    /* A process-private semaphore with nobody else knowing it yet cannot
     * fail to initialise (EINVAL is only for a value above SEM_VALUE_MAX). */
    (void)sem_init(&w.ready, 0, 0);
    if (g->tail != NULL) {
        g->tail->next = &w;
    } else {
        g->head = &w;
    }
    g->tail = &w;
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_add_explicit(&g->waited, 1, memory_order_relaxed);
    while (sem_wait(&w.ready) != 0 && errno == EINTR) {
        /* a signal handler ran; the slot is not ours yet */
    }
    /* gate_leave touched w for the last time in sem_post, which returns
     * only after it no longer reads the semaphore. */
    sem_destroy(&w.ready);
    return true;
}

void
gate_leave(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    struct gate_waiter *w = g->head;
    if (w != NULL) {
        g->head = w->next;
        if (g->head == NULL) {
            g->tail = NULL;
        }
    } else {
        g->free++;
    }
    pthread_mutex_unlock(&g->mu);
    if (w != NULL) {
        sem_post(&w->ready); /* the slot passes to w without ever being free */
    }
}

void
gate_counts(struct gate *g, uint64_t *entered, uint64_t *waited)
{
    *entered = atomic_load_explicit(&g->entered, memory_order_relaxed);
    *waited = atomic_load_explicit(&g->waited, memory_order_relaxed);
}
