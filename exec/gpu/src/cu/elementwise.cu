int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i < {{n}}) p0[i] = {{e}};
