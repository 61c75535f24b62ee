/* A deliberate data race, registered with should_fail in the ThreadSanitizer
 * build: if TSan reports stopped failing the run, this test would pass and
 * the suite would fail, so a quiet stress suite means something. */
#include <pthread.h>
#include <stdio.h>

static long shared; /* written by two threads without synchronisation */

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        shared++;
    return NULL;
}

int main(void)
{
    pthread_t a, b;
    pthread_create(&a, NULL, bump, NULL);
    pthread_create(&b, NULL, bump, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("shared = %ld\n", shared);
    return 0;
}
