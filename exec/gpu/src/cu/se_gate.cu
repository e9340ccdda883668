int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{total}}) return;
p0[i] = p1[i] * p2[i / {{hw}}];
