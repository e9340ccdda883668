int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
float v = p0[i];
{{bias}}p0[i] = {{act}};
