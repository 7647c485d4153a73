import re,shlex,random
PH={'name':'web','id':'4f2a9c1e','file':'config.yaml','path':'./data','repo':'octo/app','owner':'octo','org':'octo','branch':'main','tag':'v1.2.0','number':'42','url':'https://example.com','region':'nyc1','cluster':'prod','namespace':'prod','image':'nginx:1.25','user':'alice','key':'mykey','version':'1.2.0','app':'web','email':'alice@example.com','value':'v1','token':'tok','host':'db.example.com','port':'8080','container':'web','workflow':'ci.yml','run':'1234','chart':'bitnami/nginx','release':'web','volume':'pgdata','network':'backend','context':'prod','command':'ls','secret':'db-pass','domain':'example.com','database':'app','db':'app','droplet':'web-1','project':'proj1','size':'s-1vcpu-1gb'}
def fill(s):
    def r(m):
        k=m.group(1).lower()
        for w,v in PH.items():
            if w in k: return v
        return 'example'
    return re.sub(r'<([^<>]{1,40})>',r,s)
BAD=re.compile(r'(\|\s|\$\(|\$\{|\$[A-Za-z_]|`|&&|\|\||;\s*$|\s>\s|\s>>\s|\s<\s|\s2>|\.\.\.|\[flags\]|\[options\]|\{\{|%s|%v)')
def clean(line):
    line=fill(line.strip())
    line=re.sub(r'\s+#\s.*$','',line)  # trailing comment
    if BAD.search(line) or "$'" in line: return None
    if re.search(r'\s>\s?\S|\s<\S',line): return None
    if ';' in line and not ("'" in line or '"' in line): return None
    try: w=shlex.split(line)
    except ValueError: return None
    if len(w)<2 and not line.strip(): return None
    if re.search(r'\[[-A-Za-z ]+\]',line): return None  # usage syntax
    return ' '.join(line.split()) if "'" not in line and '"' not in line else line
def words(line):
    return shlex.split(line)
def sample(rows,n,seed=7):
    rnd=random.Random(seed); rows=list(rows)
    if len(rows)<=n: return rows
    return rnd.sample(rows,n)
