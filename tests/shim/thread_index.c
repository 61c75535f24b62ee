/*
 * thread-index: the host thread numbering (tools/host_cpu_index.c) gives a
 * thread's index back when the thread exits, so a program that runs many
 * short-lived threads keeps its live threads below HADRON_MM_MAX_CPUS and
 * on the per-CPU paths of the heap (and of the malloc shim, which uses the
 * same numbering). Standalone (exit status, TAP lines), so it also runs
 * under ThreadSanitizer (suite `stress`).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host_cpu_index.h"

#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifndef TSAN_BUILD
#define TSAN_BUILD 0
#endif

enum { PAIRS = 300 };

static int failed, n;

static void check(int ok, const char *what)
{
    n++;
    printf("%sok %d - %s\n", ok ? "" : "not ", n, what);
    if (!ok)
        failed++;
}

typedef struct {
    pthread_barrier_t *both_numbered;
    unsigned index;
} pair_arg_t;

/* Takes an index, then waits until its partner has one too: the two are
 * live at once when they are numbered. */
static void *numbered(void *p)
{
    pair_arg_t *a = p;
    a->index = host_thread_index();
    pthread_barrier_wait(a->both_numbered);
    return NULL;
}

static void run_pair(unsigned out[2])
{
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    pair_arg_t a[2] = {{&b, 0}, {&b, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, numbered, &a[i]) != 0)
            abort();
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&b);
    out[0] = a[0].index;
    out[1] = a[1].index;
}

static void *just_numbered(void *p)
{
    *(unsigned *)p = host_thread_index();
    return NULL;
}

static unsigned one_thread(void)
{
    unsigned index = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, just_numbered, &index) != 0)
        abort();
    pthread_join(t, NULL);
    return index;
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int go, ready;
} gate_t;

static gate_t gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

/* Numbered, then blocked until the gate opens: an index held across a fork. */
static void *held(void *p)
{
    *(unsigned *)p = host_thread_index();
    pthread_mutex_lock(&gate.lock);
    gate.ready++;
    pthread_cond_broadcast(&gate.cond);
    while (!gate.go)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
    return NULL;
}

int main(void)
{
    check(host_thread_index() == 0, "the first thread to ask is 0");
    check(host_thread_index() == 0, "and stays 0");

    /* 600 threads, two live at a time: with the indices given back, the
     * pairs use 1 and 2 only; numbered for good, the last pair would be
     * 599 and 600, far past HADRON_MM_MAX_CPUS. */
    unsigned hi = 0, same = 0;
    for (int r = 0; r < PAIRS; r++) {
        unsigned idx[2];
        run_pair(idx);
        if (idx[0] == idx[1])
            same++;
        for (int i = 0; i < 2; i++)
            if (idx[i] > hi)
                hi = idx[i];
    }
    check(same == 0, "two live threads never share an index");
    check(hi == 2, "600 threads, two live at a time, use indices 1 and 2 only");
    check(one_thread() == 1, "a new thread takes the lowest free index");

    /* Two threads hold 1 and 2; a fork's child has only the forking thread,
     * so 1 is free again there, while the parent's next thread gets 3. */
    unsigned h[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, held, &h[i]) != 0)
            abort();
    pthread_mutex_lock(&gate.lock);
    while (gate.ready < 2)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
    check((h[0] == 1 && h[1] == 2) || (h[0] == 2 && h[1] == 1), "two held threads have 1 and 2");
#if TSAN_BUILD
    n++;
    printf("ok %d - in a fork's child the other threads' indices are free"
           " # SKIP ThreadSanitizer starts no thread in a multi-threaded fork's child\n",
           n);
#else
    pid_t pid = fork();
    if (pid == 0)
        _exit(one_thread() == 1 && host_thread_index() == 0 ? 0 : 1);
    int status = -1;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "in a fork's child the other threads' indices are free");
#endif
    check(one_thread() == 3, "in the parent they are still held");
    pthread_mutex_lock(&gate.lock);
    gate.go = 1;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    check(one_thread() == 1, "once they exit, 1 is free again");

    printf("1..%d\n", n);
    return failed == 0 ? 0 : 1;
}
