int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
float v = p1[i];
p0[i] = v > 0.0f ? v : p2[{{alpha}}] * v;
