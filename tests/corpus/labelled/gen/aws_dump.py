import os,re,awscli
d=os.path.join(os.path.dirname(awscli.__file__),'examples')
out=[]
for root,_,files in os.walk(d):
    for f in sorted(files):
        if not f.endswith('.rst'): continue
        p=os.path.join(root,f); rel=os.path.relpath(p,d)
        lines=open(p,encoding='utf-8').read().splitlines(); i=0
        while i<len(lines):
            l=lines[i].strip()
            if l.startswith('aws '):
                while l.endswith('\\') and i+1<len(lines):
                    i+=1; l=l[:-1].rstrip()+' '+lines[i].strip()
                out.append((rel,l))
            i+=1
for rel,l in out: print(rel+'\t'+l)
