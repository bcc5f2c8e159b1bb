#include <stdio.h>

#include "wanwu.h"

int main(void)
{
    printf("wanwu %s\n", WANWU_VERSION);
    return 0;
}
